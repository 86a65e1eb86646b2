#compdef keymgmt

_keymgmt_completion() {
    local -a response described spaced unspaced
    (( ! $+commands[keymgmt] )) && return 1

    response=("${(@f)$(env COMP_WORDS="${words[*]}" COMP_CWORD=$((CURRENT-1)) _KEYMGMT_COMPLETE=zsh_complete keymgmt)}")

    for type key descr in ${response}; do
        [[ "$type" == "plain" ]] || continue
        if [[ "$descr" != "_" ]]; then
            described+=("$key":"$descr")
        elif [[ "$key" == */ || "$key" == *= || "$key" == *, ]]; then
            unspaced+=("$key")
        else
            spaced+=("$key")
        fi
    done

    (( ${#described} )) && _describe -V unsorted described -U
    (( ${#spaced} )) && compadd -U -V unsorted -a spaced
    (( ${#unspaced} )) && compadd -U -S '' -V unsorted -a unspaced
    return 0
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    # autoload from fpath, call function directly
    _keymgmt_completion "$@"
else
    # eval/source/. command, register function for later
    compdef _keymgmt_completion keymgmt
fi
