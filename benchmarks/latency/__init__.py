"""The interactive window latency suite: 50 agents x 500 nodes with every hard rule active."""
