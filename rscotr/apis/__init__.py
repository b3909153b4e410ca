from .test import (collect_results, loader_test, multitask_multi_gpu_test,
                   multitask_single_gpu_test)
from .train import default_device, train_model

__all__ = [
    'train_model', 'default_device', 'multitask_single_gpu_test', 'multitask_multi_gpu_test',
    'loader_test', 'collect_results'
]
from .inference import inference_multitask, init_model  # noqa: E402

__all__ += ['init_model', 'inference_multitask']
from .scene import inference_scene  # noqa: E402

__all__ += ['inference_scene']
