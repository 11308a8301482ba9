"""Write metrics and plots to results/: python report.py [--config config.ini] [section.key=value ...]"""
from idao.report import main

if __name__ == "__main__":
    main()
