"""Write the leaderboard CSV: python generate_submission.py [--config config.ini] [section.key=value ...]"""
from idao.submit import main

if __name__ == "__main__":
    main()
