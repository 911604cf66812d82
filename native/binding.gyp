{
  "targets": [
    {
      "target_name": "bz2",
      "sources": [
        "bz2.c"
      ],
      "libraries": [
        "-lbz2"
      ],
      "cflags": [
        "-O2",
        "-Wall"
      ]
    },
    {
      "target_name": "inflate",
      "sources": [
        "inflate.c"
      ],
      "cflags": [
        "-O2",
        "-Wall"
      ]
    }
  ]
}
