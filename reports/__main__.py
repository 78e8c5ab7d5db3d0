"""python -m reports RUN_DIR"""

import sys

from reports import main

sys.exit(main())
