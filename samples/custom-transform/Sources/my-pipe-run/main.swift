import MyTransforms
import PipeRunCLI

PipeRunCLI.main(registering: [MaskEmail.descriptor, RunningTotal.descriptor])
