"""Pictures of results and plots of logs; nothing here is used by the models.

- :mod:`.image`: draw classification top-k, detection boxes and segmentation
  overlays on RGB uint8 images (OpenCV);
- :mod:`.show`: one picture per task result, image files of test datasets;
- :mod:`.panels`: several pictures in one (captioned panels on a grid);
- :mod:`.plots`: confusion matrix and training-log curves (matplotlib, Agg),
  imported on first use.
"""
from .image import (draw_cls_topk, draw_det_boxes, draw_text_box, get_palette, label_map_to_color,
                    overlay_seg)
from .panels import fit_to_square, panel_grid, tile_images
from .show import dataset_image_path, draw_task_result

__all__ = [
    'get_palette', 'label_map_to_color', 'overlay_seg', 'draw_det_boxes', 'draw_cls_topk',
    'draw_text_box', 'draw_task_result', 'dataset_image_path', 'fit_to_square', 'tile_images',
    'panel_grid'
]
