{
  "targets": [
    {
      "target_name": "meshless_netns",
      "sources": ["native/netns.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror"],
      "cflags!": ["-O3"],
      "cflags_c!": ["-std=gnu99", "-std=gnu11"]
    }
  ]
}
