"""Print the environment RSCoTr runs in: Python, torch/CUDA, mmcv ops, OpenMMLab packages."""
from rscotr.compat.collect_env import collect_env


def main() -> None:
    for name, value in collect_env().items():
        print(f'{name}: {value}')


if __name__ == '__main__':
    main()
