"""Write the task's predictions CSV (CYGNO: the leaderboard CSV): python generate_submission.py [section.key=value ...]"""
from idao.cli import generate_main

if __name__ == "__main__":
    generate_main()
