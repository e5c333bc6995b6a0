import sys

from crt_widgets.cli import main

sys.exit(main())
