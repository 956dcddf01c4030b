import sys

from .engine.allocator import exec_with_allocator
from .engine.errors import ConfigError

try:  # first of all: the process may start again with the chosen memory allocator (engine/allocator.py)
    exec_with_allocator()
except ConfigError as e:  # POSE3D_ALLOCATOR mistyped
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)

from .tools.cli import main  # after the restart: nothing imported twice

sys.exit(main())
