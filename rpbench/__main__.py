from rpbench.cli import main

main()
