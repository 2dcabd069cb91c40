"""The constraint-heavy suite on the Alibaba 2018 scheduling competition data (Tianchi, dataset B)."""
