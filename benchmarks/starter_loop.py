"""The course's training loop as the starter's asgn6.py has it (../shared/starter-facts.md), for bench_train.py to
time against ours as a whole process: ImageFolder and a shuffling DataLoader that decode and resize every PNG
again in every epoch, the noise drawn on the CPU, the batch copied to the device, the two Adams, the L1 loss,
and loss.item() read back every iteration.  It writes loss.txt at the end and no grids.

    python -m benchmarks.starter_loop --data-dir data --epochs 2
"""
import sys
import time

import torch
from torchvision import datasets, transforms

import models
from dae import cli


def main(argv=None):
    parser = cli.ArgumentParser('starter_loop.py', __doc__)
    parser.add_argument('--data-dir', default='data', help='images in the ImageFolder layout (default: data)')
    parser.add_argument('--epochs', type=cli.positive_int(), default=1, help='passes through the data (default: 1)')
    parser.add_argument('--batch-size', type=cli.positive_int(2), default=32, help='images per iteration (default: 32)')
    parser.add_argument('--loss-file', default='loss.txt', help='where the losses go at the end (default: loss.txt)')
    cli.add_device_flag(parser)
    args = parser.parse_args(argv)
    return cli.report_errors('starter_loop.py', lambda: train(args))


def train(args):
    device = cli.choose_device(args.device)
    torch.manual_seed(4680)
    transform = transforms.Compose([transforms.Resize(64), transforms.ToTensor(),
                                    transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    try:
        folder = datasets.ImageFolder(args.data_dir, transform)
    except (FileNotFoundError, RuntimeError) as error:  # it wants DATA_DIR/CLASS/*.png, as the course's data/ is
        raise cli.UsageError(f'--data-dir {args.data_dir}: the starter reads the ImageFolder layout '
                             f'(DATA_DIR/CLASS/*.png) ({error})') from None
    loader = torch.utils.data.DataLoader(folder, batch_size=args.batch_size, shuffle=True)
    E, D = models.Encoder(128, 64).to(device), models.Decoder(128, 64).to(device)
    E_optimizer = torch.optim.Adam(E.parameters(), lr=1e-3, betas=(0.5, 0.999))
    D_optimizer = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses, start, loading = [], time.perf_counter(), 0.0
    for epoch in range(args.epochs):
        tick = time.perf_counter()
        for clean, _ in loader:
            loading += time.perf_counter() - tick  # the DataLoader decoded and resized this batch's PNGs
            noisy = (clean + 2 * (torch.rand(clean.size()) - 0.5)).clamp(-1, 1)
            clean, noisy = clean.to(device), noisy.to(device)
            E_optimizer.zero_grad()
            D_optimizer.zero_grad()
            loss = torch.mean(torch.abs(clean - D(E(noisy))))
            loss.backward()
            E_optimizer.step()
            D_optimizer.step()
            losses.append(loss.item())
            tick = time.perf_counter()
        print(f'epoch {epoch + 1}/{args.epochs}: {len(losses)} iterations, loss {losses[-1]:.4f}, '
              f'{time.perf_counter() - start:.1f} s, of which {loading:.1f} s loading batches', flush=True)
    with open(args.loss_file, 'w') as f:
        f.write(''.join(f'{loss}\n' for loss in losses))
    return 0


if __name__ == '__main__':
    sys.exit(main())
