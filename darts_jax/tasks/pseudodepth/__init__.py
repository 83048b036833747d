"""Face anti-spoofing backbones from adversarial pseudo-depth generation (Paik, Ko, Yoo 2021), reconstructed.

Stage 1 (`pretrain`): a U-Net generator learns the depth map of a face in a conditional GAN (or with L1
alone, the ablation). Stage 2 (`train`): the live/spoof classifier reuses its encoder, or is trained from
scratch or with depth as an auxiliary loss (the baselines). Both are resumable runs of the engine's driver.
"""
