"""tunechat studio: the whole pipeline in the browser (`tunechat studio`). Each page runs the
CLI's own commands (`ui.run_command`) or starts `tunechat train` as the workspace's background
job (`jobs`); `workspace` keeps every path inside one folder."""
