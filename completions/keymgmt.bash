
_keymgmt_completion() {
    local IFS=$'\n'
    local line="${COMP_LINE:0:$COMP_POINT}"
    local full="${line##*[[:space:]]}"
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local prefix="${full%"$cur"}"
    local response type value
    response=$(env COMP_LINE="$COMP_LINE" COMP_POINT="$COMP_POINT" _KEYMGMT_COMPLETE=bash_complete $1)
    for completion in $response; do
        IFS=',' read type value <<< "$completion"
        if [[ $type == 'plain' ]]; then
            COMPREPLY+=("${value#"$prefix"}")
            [[ $value == */ || $value == *= || $value == *, ]] && compopt -o nospace
        fi
    done
    return 0
}

_keymgmt_completion_setup() {
    complete -o nosort -F _keymgmt_completion keymgmt
}

_keymgmt_completion_setup;
