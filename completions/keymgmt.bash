
_keymgmt_completion() {
    local IFS=$'\n'
    local line="${COMP_LINE:0:$COMP_POINT}"
    local full="${line##*[[:space:]]}"
    # readline replaces only what follows the last COMP_WORDBREAKS character of the word (after
    # `type=` that is nothing, not COMP_WORDS' "="): strip everything up to it from each reply
    local cur="$full" i
    for (( i=${#full}-1; i>=0; i-- )); do
        if [[ "$COMP_WORDBREAKS" == *"${full:i:1}"* ]]; then cur="${full:i+1}"; break; fi
    done
    local prefix="${full:0:${#full}-${#cur}}"
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
