from .eval_hooks import MultiTaskDistEvalHook, MultiTaskEvalHook
from .metrics import (TASK_EVAL_DEFAULTS, evaluate_multitask, parse_score_weights,
                      task_eval_kwargs, weighted_score)

__all__ = [
    'MultiTaskEvalHook', 'MultiTaskDistEvalHook', 'TASK_EVAL_DEFAULTS', 'evaluate_multitask',
    'parse_score_weights', 'task_eval_kwargs', 'weighted_score'
]
