from devtools.cli.app import main

raise SystemExit(main())
