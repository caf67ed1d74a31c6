"""Scan and Snap (Tian, Wang, Chen, Du, NeurIPS 2023, arXiv 2305.16380) and JoMA (Tian et al. 2023, arXiv
2310.00535): one study per figure or theorem (`python -m analyses run papers.scan_snap`)."""
