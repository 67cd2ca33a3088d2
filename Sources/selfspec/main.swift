print("selfspec")
