import PipeRunCLI

PipeRunCLI.main()
