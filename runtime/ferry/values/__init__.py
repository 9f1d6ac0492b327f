"""What tasks pass each other: File, Directory, Asset, Drive and JSON values, and their serialization."""
