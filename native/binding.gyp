{
  "target_defaults": {
    "cflags_cc": ["-O3", "-std=c++17", "-fno-exceptions", "-fPIC", "-pthread"],
    "cflags_cc!": ["-std=gnu++17", "-O2", "-Os", "-O0"],
    "cflags!": ["-O2", "-Os", "-O0"],
    "ldflags": ["-pthread"],
    "xcode_settings": {
      "OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=c++17", "-fno-exceptions"],
      "GCC_ENABLE_CPP_EXCEPTIONS": "NO"
    }
  },
  "targets": [
    {
      "target_name": "tfree_native",
      "sources": ["addon.cc", "cpu.cc", "dispatch.cc", "threadpool.cc", "gemm_generic.cc", "ops_generic.cc", "packed_generic.cc", "packed_lut_generic.cc", "boxte.cc", "bf16_generic.cc", "quant_generic.cc"],
      "libraries": [],
      "conditions": [
        ["target_arch=='x64' or target_arch=='ia32'", {
          "dependencies": ["tfree_avx2", "tfree_avx512", "tfree_avx512vnni", "tfree_avx512bf16", "tfree_amxbf16", "tfree_avxvnni", "tfree_probe_vnni"]
        }, {
          "sources": ["avx2_stub.cc"]
        }],
        ["target_arch=='arm64'", {
          "dependencies": ["tfree_neon", "tfree_neon_dot"],
          "cflags_cc": ["-ffp-contract=off"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off"]}
        }, {
          "sources": ["neon_stub.cc"]
        }],
        ["OS=='linux'", {
          "libraries": ["-ldl"]
        }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='arm64'", {
      "targets": [
        {
          "target_name": "tfree_neon",
          "type": "static_library",
          "sources": ["gemm_neon.cc", "ops_neon.cc", "packed_neon.cc", "packed_lut_neon.cc"],
          "cflags_cc": ["-ffp-contract=off"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off"]}
        },
        {
          "target_name": "tfree_neon_dot",
          "type": "static_library",
          "sources": ["packed_neon_dot.cc"],
          "cflags_cc": ["-march=armv8.2-a+dotprod"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-march=armv8.2-a+dotprod"]}
        }
      ]
    }],
    ["target_arch=='x64' or target_arch=='ia32'", {
      "targets": [
        {
          "target_name": "tfree_avx2",
          "type": "static_library",
          "sources": ["gemm_avx2.cc", "ops_avx2.cc", "packed_avx2.cc", "packed_lut_avx2.cc", "bf16_avx2.cc"],
          "cflags_cc": ["-mavx2", "-mfma"],
          "xcode_settings": {
            "OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma"]
          }
        },
        {
          "target_name": "tfree_avx512",
          "type": "static_library",
          "sources": ["gemm_avx512.cc", "ops_avx512.cc", "packed_lut_avx512.cc", "bf16_avx512.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq"],
          "xcode_settings": {
            "OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq"]
          }
        },
        {
          "target_name": "tfree_avx512vnni",
          "type": "static_library",
          "sources": ["packed_avx512.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni"],
          "xcode_settings": {
            "OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni"]
          }
        },
        {
          "target_name": "tfree_avx512bf16",
          "type": "static_library",
          "sources": ["bf16_avx512bf16.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16"],
          "xcode_settings": {
            "OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16"]
          }
        },
        {
          "target_name": "tfree_amxbf16",
          "type": "static_library",
          "sources": ["bf16_amx.cc"],
          "cflags_cc": ["-mamx-tile", "-mamx-bf16"],
          "xcode_settings": {
            "OTHER_CPLUSPLUSFLAGS": ["-mamx-tile", "-mamx-bf16"]
          }
        },
        {
          "target_name": "tfree_avxvnni",
          "type": "static_library",
          "sources": ["packed_avxvnni.cc"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavxvnni"],
          "xcode_settings": {
            "OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma", "-mf16c", "-mavxvnni"]
          }
        },
        {
          "target_name": "tfree_probe_vnni",
          "type": "static_library",
          "sources": ["probe_vnni.cc"],
          "cflags_cc": ["-mavx2", "-mavx512f", "-mavx512vnni", "-mavxvnni"],
          "xcode_settings": {
            "OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mavx512f", "-mavx512vnni", "-mavxvnni"]
          }
        }
      ]
    }]
  ]
}
