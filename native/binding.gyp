{
  "variables": {
    "has_libdeflate%": "<!(test -f /usr/include/libdeflate.h && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "bz2",
      "sources": ["bz2.c"],
      "libraries": ["-lbz2"],
      "cflags": ["-O2", "-Wall"]
    },
    {
      "target_name": "copy",
      "sources": ["copy.c"],
      "cflags": ["-O2", "-Wall"]
    },
    {
      "target_name": "extents",
      "sources": ["extents.c"],
      "cflags": ["-O2", "-Wall"]
    },
    {
      "target_name": "hex",
      "sources": ["hex.c"],
      "cflags": ["-O2", "-Wall"]
    },
    {
      "target_name": "malloc",
      "sources": ["malloc.c"],
      "cflags": ["-O2", "-Wall"]
    },
    {
      "target_name": "md5",
      "sources": ["md5.c"],
      "cflags": ["-O2", "-Wall"]
    },
    {
      "target_name": "zlib",
      "sources": ["zlib.c"],
      "cflags": ["-O2", "-Wall"],
      "conditions": [
        ["has_libdeflate==1", { "defines": ["HAVE_LIBDEFLATE"], "libraries": ["-ldeflate"] }]
      ]
    }
  ]
}
