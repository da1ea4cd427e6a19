"""The machine a measurement ran on: floats and speed-ups differ between CPU classes (AVX2 only, or
AVX-512 with or without AVX512-BF16), so every timing and result names it."""
import os
import platform
import re


def machine_name():
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            text = f.read()
        cpu = re.search(r'model name\s*: (.*)', text).group(1)
        flags = re.search(r'flags\s*: (.*)', text).group(1).split()
        cpu += ', AVX-512' + (' with AVX512-BF16' if 'avx512_bf16' in flags else '') if 'avx512f' in flags else \
            ', AVX2 only' if 'avx2' in flags else ''
    except (OSError, AttributeError):
        pass
    kernels = torch.backends.cpu.get_cpu_capability()
    if 'AVX-512' in cpu and kernels == 'AVX2':  # ATEN_CPU_CAPABILITY=avx2: the AVX2 class's floats
        cpu += ', held to AVX2 kernels'
    return f'{cpu}, {os.cpu_count()} cores, torch {torch.__version__}'
