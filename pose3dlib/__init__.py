"""pose3d: weakly-supervised 3D human pose estimation in the wild (Zhou et al., ICCV 2017)."""

__version__ = "0.1.0"
