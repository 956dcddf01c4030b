"""`python -m pose3dlib.bench`: see pose3dlib.bench.command."""
import sys

from .threads import set_default_wait_policy

set_default_wait_policy()  # before torch is imported (pose3dlib.bench.threads)

from .command import main

sys.exit(main())
