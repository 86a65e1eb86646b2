from keymgmt_cli.cli.main import main

main()
