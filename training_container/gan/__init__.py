"""opencomposer's training package: Bach-chorale data, the U-Net GAN, metrics, MIDI I/O."""
