"""What defines a training run (RunConfig), the rules for resuming one, and how many iterations it has.
No torch here: plot_loss.py and the notebook's arithmetic use it without loading torch."""
import dataclasses
import shlex
from dataclasses import dataclass

from dae.errors import UsageError


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run, and nothing about where or how this call runs it."""
    model: str = 'spec'
    latent_size: int = 128
    image_size: int = 64
    batch_size: int = 32
    epochs: int = 500
    seed: int = 4680
    noise_level: float = 1.0
    loss: str = 'l1'
    lr_schedule: str = 'constant'
    augment: bool = False
    val_split: float = 0.0
    precision: str = 'fp32'

    def must_match(self):
        """What a resumed run may not change, or it would be another run (epochs too under a cosine schedule,
        whose length they set)."""
        same = ('model', 'latent_size', 'image_size', 'batch_size', 'seed', 'noise_level', 'loss', 'lr_schedule',
                'augment', 'val_split')
        return same + (('epochs',) if self.lr_schedule == 'cosine' else ())


FIELDS = tuple(field.name for field in dataclasses.fields(RunConfig))
MODEL_NAMES = ('spec', 'conv-encoder', 'resize-decoder', 'unet', 'residual-unet')  # dae.variants builds them


def as_flag(key, value):
    """A setting as its flag on the command line: '--augment', 'no --augment', '--data-dir my\\ folder'."""
    name = '--' + key.replace('_', '-')
    return name if value is True else f'no {name}' if value is False else f'{name} {shlex.quote(str(value))}'


def resumed_config(saved, given):
    """(the RunConfig a resumed run goes on with, {setting: value} taken from `saved` that is not the default).
    `given` holds the settings typed, which may change what does not define the run."""
    for key in saved.must_match():
        if key in given and given[key] != getattr(saved, key):
            raise UsageError(f"--resume: the checkpoint's run has {as_flag(key, getattr(saved, key))}; this one has "
                             f'{as_flag(key, given[key])}')
    defaults = RunConfig()
    taken = {key: getattr(saved, key) for key in FIELDS
             if key not in given and getattr(saved, key) != getattr(defaults, key)}
    return dataclasses.replace(saved, **{key: value for key, value in given.items() if key in FIELDS}), taken


def batches_per_epoch(num_images, batch_size):
    """Full batches plus the remainder, unless the remainder is one image (BatchNorm cannot train on one)."""
    batch_size = min(batch_size, num_images)
    full, rest = divmod(num_images, batch_size)
    return full + (rest >= 2)


def held_out_count(num_images, fraction):
    return 0 if fraction == 0 else max(1, round(num_images * fraction))


def total_iterations(config, num_images):
    """The iterations a run of `config` on `num_images` images trains for, held-out images left out."""
    return config.epochs * batches_per_epoch(num_images - held_out_count(num_images, config.val_split),
                                             config.batch_size)
