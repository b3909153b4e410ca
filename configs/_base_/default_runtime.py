# Logging, checkpoint loading and process settings shared by every config.
# training logs every 300 iterations, as released
log_config = dict(
    interval=300,
    hooks=[
        dict(type='TextLoggerHook', by_epoch=False),
        dict(type='TensorboardLoggerHook', by_epoch=False)
    ])
custom_hooks = []
# backend None: nccl on GPU, gloo on CPU (rscotr.utils.init_dist)
dist_params = dict()
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]
# only the active task's head (and the shared encoder when that head uses it)
# gets gradients in a step: DDP must allow unused parameters
find_unused_parameters = True
# loader workers: fork, OpenCV single-threaded (mmdet's setup_multi_processes)
mp_start_method = 'fork'
opencv_num_threads = 0
