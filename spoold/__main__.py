import sys

from spoold.cli.main import main

sys.exit(main())
