"""`python -m pose3dlib.tools.bench`: see pose3dlib.tools.bench.command."""
import sys

from .command import main

sys.exit(main())
