"""Bradley-Terry dataset building: the snapshot spec, pure pair maths (combining votes, ties, margins,
ranking expansion, prompt-level splits) and streaming writers for the export formats."""
