"""Train the chosen task's models: python train.py [--config FILE] [--only MODEL] [section.key=value ...]"""
from idao.cli import train_main

if __name__ == "__main__":
    train_main()
