"""`python -m pose3dlib.bench`: see pose3dlib.bench.command."""
import sys

from .command import main

sys.exit(main())
