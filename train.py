"""Train the classifier and the energy regressor: python train.py [--config config.ini] [section.key=value ...]"""
from idao.train import main

if __name__ == "__main__":
    main()
