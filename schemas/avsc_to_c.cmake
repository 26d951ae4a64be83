# avsc_to_c.cmake — turns schemas/<stem>.avsc into C string literals, so the
# .avsc files are the one source of the schema texts compiled into rs_codec.
#
#   cmake -DAVSC_DIR=<dir with the .avsc files> -DOUT=<header> -P avsc_to_c.cmake
#
# For every <stem>.avsc the header defines
#   RS_AVSC_<STEM>           the schema as compact JSON without its "doc"
#                            attributes: what rs_avro_schema_json() returns,
#                            registers and parses;
#   RS_AVSC_<STEM>_BRANCHES  for a union the same text without its outer
#                            [ ], for anything else the same text (so unions
#                            can be joined into one union).
#
# Compacting: whitespace between tokens is dropped and tokens are kept as
# written (member order, string escapes, numbers), so the text changes only
# when the schema does. A "doc" member is dropped wherever it is a key, except
# inside a "default" value, which is data and is copied as it is.
#
# C escaping: \ " and ? (no trigraphs) are escaped; the compact text has no
# newline (JSON strings cannot hold one). The text is cut into one literal per
# line after a comma, so no single literal is long; tokens are never cut.
#
# Fails (and so fails the build) on what is not one JSON value: an unknown
# character, an unterminated string, unbalanced brackets, two top-level values.
cmake_minimum_required(VERSION 3.18)

if(NOT AVSC_DIR OR NOT OUT)
  message(FATAL_ERROR "usage: cmake -DAVSC_DIR=<dir> -DOUT=<header> -P avsc_to_c.cmake")
endif()

set(RS_LINE_WIDTH 72) # a header line ends at the first comma after this many chars

# rs_avsc_compact(<file> <out>): the compact, doc-less text of <file>, with a
# newline after a comma wherever a line of the header should end.
function(rs_avsc_compact path out_var)
  file(READ "${path}" rest)
  set(out "")
  set(col 0)
  set(depth 0)      # brackets open after the current token
  set(top_values 0) # values begun at depth 0
  set(mode "")      # "doc": dropping that member; "default": copying its value
  set(mode_depth 0) # the depth of the object holding that member
  set(mode_colon 0) # its colon has been seen
  set(drop_comma 0) # a member was just dropped: drop the comma next to it
  set(prev "")      # the last token written to out

  while(NOT rest STREQUAL "")
    string(REGEX MATCH "^[ \t\r\n]+" tok "${rest}")
    set(kind ws)
    if(tok STREQUAL "")
      string(REGEX MATCH "^\"([^\"\\\\]|\\\\.)*\"" tok "${rest}")
      set(kind string)
    endif()
    if(tok STREQUAL "")
      string(REGEX MATCH "^[][{}:,]" tok "${rest}")
      set(kind punct)
    endif()
    if(tok STREQUAL "")
      string(REGEX MATCH "^[-+.0-9A-Za-z]+" tok "${rest}")
      set(kind literal)
    endif()
    if(tok STREQUAL "")
      string(SUBSTRING "${rest}" 0 20 near)
      message(FATAL_ERROR "${path}: not JSON at: ${near}")
    endif()
    string(LENGTH "${tok}" len)
    string(SUBSTRING "${rest}" ${len} -1 rest)
    if(kind STREQUAL "ws")
      continue()
    endif()

    if(depth EQUAL 0 AND NOT tok STREQUAL "}" AND NOT tok STREQUAL "]")
      math(EXPR top_values "${top_values} + 1")
      if(top_values GREATER 1)
        message(FATAL_ERROR "${path}: more than one JSON value")
      endif()
    endif()
    if(tok STREQUAL "{" OR tok STREQUAL "[")
      math(EXPR depth "${depth} + 1")
    elseif(tok STREQUAL "}" OR tok STREQUAL "]")
      math(EXPR depth "${depth} - 1")
      if(depth LESS 0)
        message(FATAL_ERROR "${path}: unbalanced ${tok}")
      endif()
    endif()
    # A member's value ends with the token that brings the depth back to the
    # depth of its object (a scalar, or the bracket closing it).
    set(value_ends 0)
    if(mode_colon AND depth EQUAL mode_depth)
      set(value_ends 1)
    endif()

    if(mode STREQUAL "doc")
      if(value_ends)
        set(mode "")
        set(mode_colon 0)
        set(drop_comma 1)
      elseif(tok STREQUAL ":")
        set(mode_colon 1)
      endif()
      continue()
    endif()

    if(drop_comma)
      set(drop_comma 0)
      if(tok STREQUAL ",")
        continue()
      endif()
      # The dropped member was the last one: drop the comma before it.
      string(REGEX REPLACE ",$" "" out "${out}")
      set(prev "")
    endif()

    if(mode STREQUAL "default")
      if(value_ends)
        set(mode "")
        set(mode_colon 0)
      elseif(tok STREQUAL ":" AND NOT mode_colon)
        set(mode_colon 1)
      endif()
    elseif(kind STREQUAL "string" AND rest MATCHES "^[ \t\r\n]*:")
      # A key.
      if(tok STREQUAL "\"doc\"")
        set(mode doc)
        set(mode_depth ${depth})
        continue()
      elseif(tok STREQUAL "\"default\"")
        set(mode default)
        set(mode_depth ${depth})
      endif()
    endif()

    # A line ends after a comma once it is long enough (counted as escaped).
    if(prev STREQUAL "," AND col GREATER RS_LINE_WIDTH)
      string(APPEND out "\n")
      set(col 0)
    endif()
    string(APPEND out "${tok}")
    set(prev "${tok}")
    string(REGEX REPLACE "([\"\\\\?])" "\\\\\\1" esc "${tok}")
    string(LENGTH "${esc}" esc_len)
    math(EXPR col "${col} + ${esc_len}")
  endwhile()

  if(NOT depth EQUAL 0 OR top_values EQUAL 0)
    message(FATAL_ERROR "${path}: not one complete JSON value")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

# rs_avsc_literals(<text> <out>): <text> as C string literals, one per line.
function(rs_avsc_literals text out_var)
  string(REPLACE "\\" "\\\\" text "${text}")
  string(REPLACE "\"" "\\\"" text "${text}")
  string(REPLACE "?" "\\?" text "${text}")
  string(REPLACE "\n" "\" \\\n    \"" text "${text}")
  set(${out_var} "    \"${text}\"" PARENT_SCOPE)
endfunction()

file(GLOB avsc_files "${AVSC_DIR}/*.avsc")
if(NOT avsc_files)
  message(FATAL_ERROR "no .avsc files in ${AVSC_DIR}")
endif()
list(SORT avsc_files)

set(header "/* Generated from the .avsc files in schemas/ by schemas/avsc_to_c.cmake at
 * build time: do not edit, edit the .avsc file. Each text is the file's schema
 * as compact JSON without its \"doc\" attributes. */
#ifndef RS_AVRO_SCHEMA_TEXTS_H
#define RS_AVRO_SCHEMA_TEXTS_H
")
foreach(path IN LISTS avsc_files)
  get_filename_component(stem "${path}" NAME_WE)
  string(TOUPPER "${stem}" macro)
  string(MAKE_C_IDENTIFIER "RS_AVSC_${macro}" macro)
  rs_avsc_compact("${path}" text)
  string(APPEND header "\n/* ${stem}.avsc */\n")
  if(text MATCHES "^\\[")
    # A union: the branches are what lies between the outer [ ].
    string(LENGTH "${text}" n)
    math(EXPR n "${n} - 2")
    string(SUBSTRING "${text}" 1 ${n} inner)
    rs_avsc_literals("${inner}" lit)
    string(APPEND header "#define ${macro}_BRANCHES \\\n${lit}\n")
    string(APPEND header "#define ${macro} \"[\" ${macro}_BRANCHES \"]\"\n")
  else()
    rs_avsc_literals("${text}" lit)
    string(APPEND header "#define ${macro} \\\n${lit}\n")
    string(APPEND header "#define ${macro}_BRANCHES ${macro}\n")
  endif()
endforeach()
string(APPEND header "\n#endif\n")

# Written whole, then renamed: an interrupted build leaves no half header.
file(WRITE "${OUT}.tmp" "${header}")
file(RENAME "${OUT}.tmp" "${OUT}")
