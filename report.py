"""Write the task's metrics and plots: python report.py [--config FILE] [section.key=value ...]"""
from idao.cli import report_main

if __name__ == "__main__":
    report_main()
