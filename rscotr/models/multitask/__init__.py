from .pretrain import load_task_pretrain, map_dino_state_dict
from .rscotr import RSCoTr, parse_losses

__all__ = ["RSCoTr", "parse_losses", "load_task_pretrain", "map_dino_state_dict"]
