"""The synthetic-people generator: bodies, poses and rendering, written in the Human3.6M, MPII
and official-download formats, plus uncropped scenes and videos for the demo."""
