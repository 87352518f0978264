# embed.cmake: helpers for the cmake -P scripts that turn files into C source, so
# that a program carries its data (migrations, the dashboard) and needs no path to
# it at run time. Include it with include(${CMAKE_CURRENT_LIST_DIR}/.../embed.cmake).

# embed_c_literal(FILE VAR): sets VAR to the bytes of FILE as one C string literal
# of \xNN escapes (quotes included), safe for any content, NULs too.
function(embed_c_literal file var)
  file(READ ${file} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" escaped "${hex}")
  set(${var} "\"${escaped}\"" PARENT_SCOPE)
endfunction()

# embed_write(OUTPUT BODY): writes BODY to OUTPUT only when it changed, so that an
# unchanged input rebuilds nothing.
function(embed_write output body)
  file(WRITE ${output}.tmp "${body}")
  file(COPY_FILE ${output}.tmp ${output} ONLY_IF_DIFFERENT)
  file(REMOVE ${output}.tmp)
endfunction()
