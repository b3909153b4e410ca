from .pretrain import load_task_pretrain, map_dino_state_dict
from .rscotr import RSCoTr, TASKS, parse_losses

__all__ = ["RSCoTr", "TASKS", "parse_losses", "load_task_pretrain", "map_dino_state_dict"]
