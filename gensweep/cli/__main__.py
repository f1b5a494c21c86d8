import sys

from gensweep.cli import main

sys.exit(main())
