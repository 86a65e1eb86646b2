from keymgmt_cli.cli.entry import main

main()
