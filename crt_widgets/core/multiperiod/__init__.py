"""Multi-period cluster trials (stepped wedge, cluster crossover, parallel with baseline, incomplete designs):
the design as a sequences x periods matrix with the number of clusters on each sequence (:mod:`.designs`), and
the GLS variance of the treatment effect with its power, the clusters and the steps a trial needs (:mod:`.power`).
"""
