import sys

from harness.driver.group import main

sys.exit(main())
