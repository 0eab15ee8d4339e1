"""From target positions to orders: planning (pure), simulated and IB execution, the live trader."""
