import sys

from embedded_servers.launcher import main

sys.exit(main())
