"""Facts about the three published data sets, in one place.

Everything that both the synthetic demo-data generator
(:mod:`rscotr.datasets.demo_data`) and the converters
(:mod:`rscotr.datasets.converters`) need to agree on lives here: class names
and their order (which is the label index order of the prepared data),
the Potsdam colour palette, the standard Potsdam tile split and the file-name
patterns of the raw releases. See the README (Preparing the real datasets).
"""
from typing import Dict, Tuple

# --------------------------------------------------------------------------
# NWPU-RESISC45: 45 scene classes, one folder each, 700 JPEGs of 256x256 RGB,
# named ``<class>_<3-digit index>.jpg``. Label index = position in this tuple.
# --------------------------------------------------------------------------
RESISC45_CLASSES: Tuple[str, ...] = (
    'airplane', 'airport', 'baseball_diamond', 'basketball_court', 'beach',
    'bridge', 'chaparral', 'church', 'circular_farmland', 'cloud',
    'commercial_area', 'dense_residential', 'desert', 'forest', 'freeway',
    'golf_course', 'ground_track_field', 'harbor', 'industrial_area',
    'intersection', 'island', 'lake', 'meadow', 'medium_residential',
    'mobile_home_park', 'mountain', 'overpass', 'palace', 'parking_lot',
    'railway', 'railway_station', 'rectangular_farmland', 'river',
    'roundabout', 'runway', 'sea_ice', 'ship', 'snowberg',
    'sparse_residential', 'stadium', 'storage_tank', 'tennis_court',
    'terrace', 'thermal_power_station', 'wetland')
RESISC45_IMG_SIZE = 256

# --------------------------------------------------------------------------
# DIOR: 800x800 JPEGs named ``<5-digit id>.jpg``; trainval ids come first
# (00001-11725, in ``JPEGImages-trainval``), test ids after (11726-23463, in
# ``JPEGImages-test``). The class strings below are the exact ``<name>``
# values of the VOC-style XMLs; COCO ``category_id`` = index + 1.
# --------------------------------------------------------------------------
DIOR_CLASSES: Tuple[str, ...] = (
    'airplane', 'airport', 'baseballfield', 'basketballcourt', 'bridge',
    'chimney', 'dam', 'Expressway-Service-area', 'Expressway-toll-station',
    'golffield', 'groundtrackfield', 'harbor', 'overpass', 'ship', 'stadium',
    'storagetank', 'tenniscourt', 'trainstation', 'vehicle', 'windmill')
DIOR_TRAINVAL_IMG_DIR = 'JPEGImages-trainval'
DIOR_TEST_IMG_DIR = 'JPEGImages-test'
DIOR_ANN_DIR = 'Annotations/Horizontal Bounding Boxes'
DIOR_IMAGESETS_DIR = 'ImageSets/Main'
#: Split name -> image folder it lives in (relative to the DIOR root).
DIOR_SPLIT_IMG_DIRS: Dict[str, str] = {
    'train': DIOR_TRAINVAL_IMG_DIR,
    'val': DIOR_TRAINVAL_IMG_DIR,
    'test': DIOR_TEST_IMG_DIR,
}

# --------------------------------------------------------------------------
# ISPRS Potsdam: 38 tiles of 6000x6000 named ``top_potsdam_<A>_<B>_<suffix>``.
# Prepared label index = position in POTSDAM_CLASSES (clutter is 5: trained
# as a class or ignored, by PotsdamIndexDataset's protocol); black (boundary /
# unlabelled in the ``noBoundary`` variant) maps to POTSDAM_IGNORE_INDEX.
# --------------------------------------------------------------------------
POTSDAM_CLASSES: Tuple[str, ...] = ('impervious_surface', 'building',
                                   'low_vegetation', 'tree', 'car',
                                   'clutter')
#: RGB colour of each class in the label tiles, same order as the classes.
POTSDAM_PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (255, 255, 255),  # impervious surfaces
    (0, 0, 255),  # building
    (0, 255, 255),  # low vegetation
    (0, 255, 0),  # tree
    (255, 255, 0),  # car
    (255, 0, 0),  # clutter / background
)
#: Colour of eroded boundaries in ``5_Labels_all_noBoundary``.
POTSDAM_BOUNDARY_COLOR: Tuple[int, int, int] = (0, 0, 0)
POTSDAM_IGNORE_INDEX = 255

POTSDAM_TRAIN_TILES: Tuple[str, ...] = (
    '2_10', '2_11', '2_12', '3_10', '3_11', '3_12', '4_10', '4_11', '4_12',
    '5_10', '5_11', '5_12', '6_10', '6_11', '6_12', '6_7', '6_8', '6_9',
    '7_10', '7_11', '7_12', '7_7', '7_8', '7_9')
POTSDAM_VAL_TILES: Tuple[str, ...] = ('5_15', '6_15', '6_13', '3_13', '4_14',
                                      '6_14', '5_14', '2_13', '4_15', '2_14',
                                      '5_13', '4_13', '3_14', '7_13')

#: Image modality -> (folder / zip stem, file-name suffix, band count).
#: Band order inside the files: RGB = (R, G, B), IRRG = (IR, R, G),
#: RGBIR = (R, G, B, IR).
POTSDAM_IMAGE_SOURCES: Dict[str, Tuple[str, str, int]] = {
    'RGB': ('2_Ortho_RGB', 'RGB', 3),
    'IRRG': ('3_Ortho_IRRG', 'IRRG', 3),
    'RGBIR': ('4_Ortho_RGBIR', 'RGBIR', 4),
}
#: Label variant -> (folder / zip stem, file-name suffix).
POTSDAM_LABEL_SOURCES: Dict[str, Tuple[str, str]] = {
    'full': ('5_Labels_all', 'label'),
    'noBoundary': ('5_Labels_all_noBoundary', 'label_noBoundary'),
}


def potsdam_file_name(tile: str, suffix: str) -> str:
    """Official file name of a Potsdam tile.

    Args:
        tile (str): Tile id ``'<A>_<B>'``, e.g. ``'2_10'``.
        suffix (str): ``'RGB'``, ``'IRRG'``, ``'RGBIR'``, ``'label'`` or
            ``'label_noBoundary'``.

    Returns:
        str: e.g. ``'top_potsdam_2_10_RGB.tif'``.
    """
    return f'top_potsdam_{tile}_{suffix}.tif'


def potsdam_split_of(tile: str) -> str:
    """Standard split of a Potsdam tile: ``'train'``, ``'val'`` or ``''``."""
    if tile in POTSDAM_TRAIN_TILES:
        return 'train'
    if tile in POTSDAM_VAL_TILES:
        return 'val'
    return ''
