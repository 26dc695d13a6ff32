"""Evaluation: the SR benchmark protocol (PSNR/SSIM on Y), the style judge (Gram ratio, colour, edges) and edge maps."""
